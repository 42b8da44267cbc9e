"""CAMUS echocardiography: ``patientXXXX/patientXXXX_{2CH,4CH}_{ED,ES}[_gt].mhd`` (+ ``.raw``).

Each patient folder holds, per view (2-chamber, 4-chamber), the end-diastole and end-systole
frames, their ``_gt`` label maps (0 background, 1 LV endocardium, 2 myocardium, 3 left atrium),
the whole cine ``_sequence`` and an ``Info_<view>.cfg`` (``Key: value`` lines). ED and ES are two
samples of one patient (``patient_id``), so splits never separate them.
"""

from pathlib import Path
from typing import Any

from eisen_lightning import keys
from eisen_lightning.data.datasets.decathlon import LayoutError
from eisen_lightning.data.datasets.json_list import pair_problem, require_folder
from eisen_lightning.utils.logging import get_logger

log = get_logger(__name__)

VIEWS = ("2CH", "4CH")
FRAMES = ("ED", "ES")
#: View -> Eisen's case fields of its frame and of its label map.
VIEW_FIELDS = {"2CH": (keys.IMAGE_2CH, keys.LABEL_2CH), "4CH": (keys.IMAGE_4CH, keys.LABEL_4CH)}
LABEL_NAMES = ("background", "lv_endocardium", "myocardium", "left_atrium")
SUFFIXES = (".mhd", ".raw", ".zraw")


def read_camus(
    root: str | Path,
    views: tuple[str, ...] = VIEWS,
    with_ground_truth: bool = True,
    with_sequences: bool = False,
    check_files: bool = True,
    hint: str = "",
) -> list[dict[str, Any]]:
    """Parse and check a CAMUS folder (``training/`` or ``testing/``) into one case per view and frame.

    Case fields: ``case_id`` (``patient0001_2CH_ED``), ``patient_id``, ``type`` (``ED``/``ES``),
    ``view``, Eisen's ``image_<view>``, ``label_<view>`` (with ground truth), ``sequence_<view>``
    (when asked and present), ``info_<view>`` (the ``Info_<view>.cfg`` entries, when present) and
    ``image``/``label``, the selected view's paths.

    Args:
        root: The folder of patient folders.
        views: Views to read, each ``2CH`` or ``4CH``; each gives its own samples.
        with_ground_truth: Whether every frame must have its ``_gt`` label map.
        with_sequences: Add the cine sequences as ``sequence_<view>`` fields.
        check_files: Check that every ``.mhd`` header's data file exists.
        hint: Appended to the error when the folder is missing or empty.

    Raises:
        LayoutError: Listing every problem (missing partners, wrong suffixes, missing data files).
    """
    root = Path(root)
    require_folder(root, hint)
    bad = [v for v in views if v not in VIEWS]
    if bad or not views:
        raise ValueError(f"views must be some of {VIEWS}, got {list(views)}")
    problems: list[str] = []
    cases: list[dict[str, Any]] = []
    for patient in sorted(p for p in root.iterdir() if p.is_dir()):
        if not any(patient.iterdir()):
            log.warning("%s is empty: skipped", patient)
            continue
        problems += _suffix_problems(patient)
        for view in views:
            cases += _view_cases(patient, view, with_ground_truth, with_sequences, problems)
    if check_files:
        problems += [p for case in cases for p in _data_file_problems(case)]
    if not cases and not problems:
        problems.append("no patientXXXX/ folder with patientXXXX_<view>_<ED|ES>.mhd files")
    if problems:
        raise LayoutError(root, problems, hint or "Fix the files listed above or download CAMUS again.")
    return cases


def _view_cases(
    patient: Path, view: str, with_gt: bool, with_sequences: bool, problems: list[str]
) -> list[dict[str, Any]]:
    name = patient.name
    cases = []
    for frame in FRAMES:
        image, label = patient / f"{name}_{view}_{frame}.mhd", patient / f"{name}_{view}_{frame}_gt.mhd"
        problem = pair_problem(image, label, with_gt, "label", "training needs every _gt file")
        if problem:
            problems.append(problem)
            continue
        case = {
            keys.CASE_ID: f"{name}_{view}_{frame}",
            keys.PATIENT_ID: name,
            "type": frame,
            "view": view,
            VIEW_FIELDS[view][0]: str(image.absolute()),
            keys.IMAGE: str(image.absolute()),
        }
        if with_gt:
            case[VIEW_FIELDS[view][1]] = case[keys.LABEL] = str(label.absolute())
        sequence = patient / f"{name}_{view}_sequence.mhd"
        if with_sequences and sequence.is_file():
            case[f"sequence_{view}"] = str(sequence.absolute())
        info = patient / f"Info_{view}.cfg"
        if info.is_file():
            case[f"info_{view}"] = read_info(info)
        cases.append(case)
    return cases


def read_info(path: Path) -> dict[str, str]:
    """The ``Key: value`` lines of a CAMUS ``Info_<view>.cfg`` file."""
    entries = {}
    for line in path.read_text(encoding="utf-8", errors="ignore").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            entries[key.strip()] = value.strip()
    return entries


def _suffix_problems(patient: Path) -> list[str]:
    return [
        f"{path}: wrong suffix {''.join(path.suffixes)!r}; CAMUS images are MetaImage .mhd headers with "
        ".raw data: convert the file or download the .mhd release"
        for path in sorted(patient.iterdir())
        if path.is_file() and path.name.startswith(f"{patient.name}_") and not path.name.endswith(SUFFIXES)
    ]


def _data_file_problems(case: dict[str, Any]) -> list[str]:
    problems = []
    for key in (keys.IMAGE, keys.LABEL):
        if key in case:
            header = Path(case[key])
            data = mhd_data_file(header)
            if data is not None and not data.is_file():
                problems.append(f"{header}: its data file {data.name} is missing (a .mhd needs its .raw)")
    return problems


def mhd_data_file(header: Path) -> Path | None:
    """The file a MetaImage header's ``ElementDataFile`` names, or ``None`` for ``LOCAL`` data."""
    with open(header, encoding="latin-1") as handle:
        for line in handle:
            key, _, value = line.partition("=")
            if key.strip() == "ElementDataFile":
                value = value.strip()
                return None if value == "LOCAL" else header.parent / value
    return None
