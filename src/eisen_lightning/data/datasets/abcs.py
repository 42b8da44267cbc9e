"""ABCs (MICCAI 2020): ``<id>_ct.mha``, ``<id>_t1.mha``, ``<id>_t2.mha``, ``<id>_labelmap_task{1,2}.mha``.

Files sit directly in the data folder or one folder level below (``ABCs_training_data_Part1/``).
As in Eisen, a case is found from a file whose name contains ``mha`` and ``ct`` but not ``label``,
and its id is the text before the first ``_``.
"""

import re
from pathlib import Path
from typing import Any

from eisen_lightning import keys
from eisen_lightning.data.datasets.decathlon import LayoutError
from eisen_lightning.data.datasets.json_list import require_folder

MODALITIES = (keys.CT, keys.T1, keys.T2)
TASKS = (1, 2)
#: Task -> Eisen's case field of its label map.
LABEL_FIELDS = {1: keys.LABEL_TASK1, 2: keys.LABEL_TASK2}
#: Structures of each task, in label-value order (1, 2, ...), background first.
LABEL_NAMES = {
    1: ("background", "falx_cerebri", "tentorium_cerebelli", "sinuses", "cerebellum", "ventricles"),
    2: (
        "background",
        "brainstem",
        "eye_left",
        "eye_right",
        "optic_nerve_left",
        "optic_nerve_right",
        "optic_chiasm",
        "lacrimal_gland_left",
        "lacrimal_gland_right",
        "cochlea_left",
        "cochlea_right",
    ),
}
_FILE = re.compile(r"^(?P<id>[^_]+)_(?P<part>ct|t1|t2|labelmap_task[12])(?P<suffix>\..+)?$")


def read_abcs(root: str | Path, training: bool = True, hint: str = "") -> list[dict[str, Any]]:
    """Parse and check an ABCs folder (flat, or one level of subfolders) into cases.

    Case fields: ``case_id``, Eisen's ``ct``, ``t1``, ``t2`` and, for training, ``label_task1`` and
    ``label_task2`` (absolute paths).

    Raises:
        LayoutError: Listing every problem: modalities or label maps missing, label maps without
            their CT, files with a suffix other than ``.mha``, repeated ids.
    """
    root = Path(root)
    require_folder(root, hint)
    folders = [root, *sorted(p for p in root.iterdir() if p.is_dir())]
    problems: list[str] = []
    cases: dict[str, dict[str, Any]] = {}
    for folder in folders:
        files = sorted(p for p in folder.iterdir() if p.is_file())
        problems += _suffix_problems(files)
        for ct in (p for p in files if "mha" in p.name and "ct" in p.name and "label" not in p.name):
            case_id = ct.name.split("_")[0]
            if case_id in cases:
                problems.append(f"{ct}: case id {case_id!r} repeats {cases[case_id]['ct']}")
                continue
            cases[case_id] = _case(folder, case_id, training, problems)
        problems += _orphans(folder, files)
    if not cases and not problems:
        problems.append("no <id>_ct.mha file here or one folder below")
    if problems:
        raise LayoutError(
            root, problems, hint or "Fix the files listed above or extract the ABCs archives again."
        )
    return list(cases.values())


def _case(folder: Path, case_id: str, training: bool, problems: list[str]) -> dict[str, Any]:
    case: dict[str, Any] = {keys.CASE_ID: case_id}
    parts = list(MODALITIES) + ([f"labelmap_task{t}" for t in TASKS] if training else [])
    for part in parts:
        path = folder / f"{case_id}_{part}.mha"
        if not path.is_file():
            problems.append(
                f"{path}: missing ({'a training label map' if 'label' in part else 'an input'} of {case_id})"
            )
        field = LABEL_FIELDS[int(part[-1])] if part.startswith("labelmap") else part
        case[field] = str(path.absolute())
    return case


def _suffix_problems(files: list[Path]) -> list[str]:
    return [
        f"{p}: wrong suffix {m['suffix']!r}; ABCs files are uncompressed MetaImage .mha"
        for p in files
        if (m := _FILE.match(p.name)) and m["suffix"] != ".mha"
    ]


def _orphans(folder: Path, files: list[Path]) -> list[str]:
    names = {p.name for p in files}
    return [
        f"{p}: a label map without its image {m['id']}_ct.mha"
        for p in files
        if (m := _FILE.match(p.name))
        and m["part"].startswith("labelmap")
        and m["suffix"] == ".mha"
        and f"{m['id']}_ct.mha" not in names
    ]
