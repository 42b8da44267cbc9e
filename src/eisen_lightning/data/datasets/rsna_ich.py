"""RSNA Intracranial Hemorrhage Detection (Kaggle, stage 2): one CT slice per DICOM, 6 labels per slice.

Layout as distributed::

    stage_2_train.csv        ID,Label   with ID = ID_<image id>_<subtype>, six rows per image
    stage_2_train/ID_<image id>.dcm
    stage_2_test/ID_<image id>.dcm      (optional)

The label of an image is the 0/1 vector over :data:`SUBTYPES`, in Eisen's order. The CSV of the
real set repeats a few rows; identical repeats are accepted, conflicting ones are reported.
"""

import csv
from pathlib import Path
from typing import Any

from eisen_lightning import keys
from eisen_lightning.data.classification import ImageLayout, folder_images, problems_error

SUBTYPES = ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural", "any")
TRAIN_CSV = "stage_2_train.csv"
TRAIN_DIR = "stage_2_train"
TEST_DIR = "stage_2_test"
#: Cache of each training image's DICOM PatientID (reading 750k headers takes a while, once).
PATIENTS_CSV = "stage_2_train_patients.csv"
RSNA_ICH_HINT = (
    "Get the data from https://www.kaggle.com/c/rsna-intracranial-hemorrhage-detection/data (a Kaggle "
    "login is needed) and extract it so that {root}/stage_2_train.csv and {root}/stage_2_train/*.dcm exist."
)


def has_rsna_ich(root: Path) -> bool:
    """Whether the training CSV or DICOM folder is in ``root``."""
    return (root / TRAIN_CSV).is_file() or (root / TRAIN_DIR).is_dir()


def read_rsna_ich(root: str | Path) -> ImageLayout:
    """Parse an RSNA ICH folder: ``{case_id, image, label (6 floats)}`` per training slice.

    Raises:
        LayoutError: Listing every slice without CSV rows, CSV id without a slice, incomplete or
            conflicting rows, wrong suffix, empty folder.
    """
    root = Path(root)
    problems: list[str] = []
    labels, listed = _labels(root / TRAIN_CSV, problems)
    images = folder_images(root / TRAIN_DIR, (".dcm",), problems)
    if listed:
        problems += [
            f"{root / TRAIN_CSV}: {i} has labels but its image {root / TRAIN_DIR / (i + '.dcm')} is missing"
            for i in sorted(listed - images.keys())
        ]
        problems += [f"{images[i]} has no rows in {root / TRAIN_CSV}" for i in sorted(images.keys() - listed)]
    labelled = [
        {keys.CASE_ID: i, keys.IMAGE: str(images[i]), keys.LABEL: labels[i]}
        for i in sorted(images.keys() & labels.keys())
    ]
    unlabelled = []
    if (root / TEST_DIR).is_dir():
        test = folder_images(root / TEST_DIR, (".dcm",), problems)
        unlabelled = [{keys.CASE_ID: i, keys.IMAGE: str(p)} for i, p in sorted(test.items())]
    problems_error(root, problems, RSNA_ICH_HINT.format(root=root))
    return ImageLayout(root, labelled, unlabelled)


def _labels(path: Path, problems: list[str]) -> tuple[dict[str, list[float]], set[str]]:
    """``image id -> [6 labels]`` of the complete ids, and every id the CSV names.

    The file (4.5 million rows in the real set) is streamed. Incomplete, unknown or conflicting
    rows are problems.
    """
    if not path.is_file():
        problems.append(f"{path} is missing")
        return {}, set()
    found: dict[str, list[float | None]] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = csv.reader(handle)
        header = next(rows, [])
        if header[:2] != ["ID", "Label"]:
            problems.append(f"{path}: the header must be ID,Label, got {header}")
            return {}, set()
        for line, row in enumerate(rows, start=2):
            _add_row(path, line, row, found, problems)
    incomplete = {
        i: [s for s, v in zip(SUBTYPES, vs, strict=True) if v is None]
        for i, vs in found.items()
        if None in vs
    }
    problems += [f"{path}: {i} has no row for {missing}" for i, missing in sorted(incomplete.items())]
    complete = {i: [float(v) for v in vs] for i, vs in found.items() if i not in incomplete}
    return complete, set(found)


def _add_row(
    path: Path, line: int, row: list[str], found: dict[str, list[float | None]], problems: list[str]
) -> None:
    name = row[0].strip() if row else ""
    image_id, _, subtype = name.rpartition("_")
    if not image_id.startswith("ID_") or subtype not in SUBTYPES or len(row) < 2:
        problems.append(
            f"{path} line {line}: expected ID_<image id>_<subtype>,<label>, got {','.join(row)!r}"
        )
        return
    try:
        value = float(row[1])
    except ValueError:
        problems.append(f"{path} line {line}: Label must be 0 or 1, got {row[1]!r}")
        return
    values = found.setdefault(image_id, [None] * len(SUBTYPES))
    index = SUBTYPES.index(subtype)
    if values[index] is not None and values[index] != value:
        problems.append(f"{path} line {line}: {name} is listed with {values[index]} and {value}")
    elif values[index] is None:
        values[index] = value


def patient_ids(root: Path, cases: list[dict[str, Any]]) -> dict[str, str]:
    """``case id -> DICOM PatientID`` of the training slices, read once and cached in ``PATIENTS_CSV``.

    The cache is rebuilt when it lacks a case; it is skipped (with the headers read each time)
    where ``root`` is not writable.
    """
    cache = root / PATIENTS_CSV
    known: dict[str, str] = {}
    if cache.is_file():
        with cache.open(newline="") as handle:
            known = {row["ID"]: row["PatientID"] for row in csv.DictReader(handle)}
    missing = [case for case in cases if case[keys.CASE_ID] not in known]
    if not missing:
        return known
    import pydicom

    for case in missing:
        header = pydicom.dcmread(case[keys.IMAGE], stop_before_pixels=True, specific_tags=["PatientID"])
        known[case[keys.CASE_ID]] = str(header.get("PatientID", "")) or case[keys.CASE_ID]
    _write_cache(cache, known)
    return known


def _write_cache(cache: Path, known: dict[str, str]) -> None:
    from eisen_lightning.utils.files import atomic_write_text

    text = "ID,PatientID\n" + "".join(f"{i},{p}\n" for i, p in sorted(known.items()))
    try:
        atomic_write_text(cache, text)
    except OSError:  # a read-only data folder: read the headers again next time
        pass
