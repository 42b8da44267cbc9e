"""The Medical Segmentation Decathlon layout: ``dataset.json``, ``imagesTr/``, ``labelsTr/``, ``imagesTs/``.

Every problem in a layout is collected and reported in one :class:`LayoutError`, so a user fixes
a broken download in one pass instead of one traceback at a time.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from eisen_lightning import keys

DECATHLON_TASKS = (
    "Task01_BrainTumour",
    "Task02_Heart",
    "Task03_Liver",
    "Task04_Hippocampus",
    "Task05_Prostate",
    "Task06_Lung",
    "Task07_Pancreas",
    "Task08_HepaticVessel",
    "Task09_Spleen",
    "Task10_Colon",
)
REQUIRED_KEYS = ("labels", "modality", "training")
NIFTI_SUFFIXES = (".nii.gz", ".nii")


class LayoutError(ValueError):
    """A data-set folder does not match its documented layout; the message lists every problem.

    >>> error = LayoutError(Path("data/Task09_Spleen"), ["dataset.json is missing"], "Download it again.")
    >>> print(error)
    data/Task09_Spleen: 1 problem(s) with this data set:
      - dataset.json is missing
    Download it again.
    >>> error.problems
    ['dataset.json is missing']
    """

    def __init__(self, root: Path, problems: list[str], hint: str = "") -> None:
        self.root, self.problems = root, problems
        lines = [f"{root}: {len(problems)} problem(s) with this data set:"]
        lines += [f"  - {p}" for p in problems]
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))


@dataclass
class DecathlonLayout:
    """A parsed Decathlon task.

    Attributes:
        root: The task folder (holding ``dataset.json``).
        name: The ``name`` entry of ``dataset.json``.
        modalities: Modality per input channel, in channel order (``["CT"]``, ``["FLAIR", ...]``).
        label_names: Label name per class index, background first.
        training: Labelled cases: ``{"case_id", "image", "label"}`` with absolute paths.
        test: Unlabelled cases: ``{"case_id", "image"}``.
    """

    root: Path
    name: str
    modalities: list[str]
    label_names: list[str]
    training: list[dict[str, str]] = field(default_factory=list)
    test: list[dict[str, str]] = field(default_factory=list)
    attributes: dict = field(default_factory=dict)


def case_id(path: str) -> str:
    """Return the case id of a Decathlon file path (``./imagesTr/spleen_2.nii.gz`` -> ``spleen_2``)."""
    name = Path(path).name
    for suffix in NIFTI_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_decathlon(root: str | Path, check_files: bool = True) -> DecathlonLayout:
    """Parse and check a Decathlon task folder.

    Args:
        root: The task folder, such as ``data/Task09_Spleen``.
        check_files: Also check that every listed file exists and that image and label headers agree.

    Raises:
        LayoutError: Listing every problem found, with the file it concerns.

    >>> import tempfile
    >>> from eisen_lightning.data.synthetic.decathlon import write_demo_task
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     task = write_demo_task(Path(folder) / "Task00_Demo", num_training=2, num_test=1)
    ...     layout = read_decathlon(task)
    >>> layout.name, layout.modalities, layout.label_names
    ('Demo', ['MRI'], ['background', 'organ', 'lesion'])
    >>> [case["case_id"] for case in layout.training], [case["case_id"] for case in layout.test]
    (['demo_0', 'demo_1'], ['demo_2'])
    """
    root = Path(root)
    meta = _read_json(root / "dataset.json")
    problems = [f"dataset.json has no {k!r} entry" for k in REQUIRED_KEYS if k not in meta]
    labels = _index_map(meta.get("labels", {}), "labels", problems)
    modalities = _index_map(meta.get("modality", {}), "modality", problems)
    base = root.absolute()  # case paths are absolute: they must survive a change of working directory
    training = _training_cases(base, meta.get("training", []), problems)
    test = [{keys.CASE_ID: case_id(p), keys.IMAGE: str(base / p)} for p in meta.get("test", [])]
    if check_files:
        problems += _file_problems(training, test)
    if problems:
        raise LayoutError(root, problems, hint="Fix the files listed above or download the task again.")
    return DecathlonLayout(
        root=root,
        name=str(meta.get("name", root.name)),
        modalities=modalities,
        label_names=labels,
        training=training,
        test=test,
        attributes={k: v for k, v in meta.items() if k not in ("training", "test")},
    )


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise LayoutError(path.parent, [f"{path.name} is missing"])
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LayoutError(path.parent, [f"{path.name} is not valid JSON: {err}"]) from err
    if not isinstance(meta, dict):
        raise LayoutError(path.parent, [f"{path.name} must hold a JSON object, got {type(meta).__name__}"])
    return meta


def _index_map(entry: object, name: str, problems: list[str]) -> list[str]:
    """Turn ``{"0": "background", "1": "spleen"}`` into ``["background", "spleen"]``."""
    if not isinstance(entry, dict) or not entry:
        problems.append(f"dataset.json {name!r} must be a non-empty object like {{'0': '...'}}")
        return []
    try:
        indexed = {int(k): str(v) for k, v in entry.items()}
    except ValueError:
        problems.append(f"dataset.json {name!r} keys must be integers, got {sorted(entry)}")
        return []
    if sorted(indexed) != list(range(len(indexed))):
        problems.append(f"dataset.json {name!r} keys must be 0..{len(indexed) - 1}, got {sorted(indexed)}")
        return []
    return [indexed[i] for i in range(len(indexed))]


def _training_cases(root: Path, entries: object, problems: list[str]) -> list[dict[str, str]]:
    if not isinstance(entries, list) or not entries:
        problems.append("dataset.json 'training' must be a non-empty list of {'image', 'label'} objects")
        return []
    cases, seen = [], set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not {"image", "label"} <= entry.keys():
            problems.append(f"dataset.json training[{i}] must have 'image' and 'label', got {entry!r}")
            continue
        cid = case_id(entry["image"])
        if cid in seen:
            problems.append(f"dataset.json training[{i}]: duplicate case id {cid!r}")
        seen.add(cid)
        image, label = str(root / entry["image"]), str(root / entry["label"])
        cases.append({keys.CASE_ID: cid, keys.IMAGE: image, keys.LABEL: label})
    return cases


def _file_problems(training: list[dict[str, str]], test: list[dict[str, str]]) -> list[str]:
    import nibabel as nib

    problems = []
    for case in training + test:
        missing = [case[k] for k in (keys.IMAGE, keys.LABEL) if k in case and not Path(case[k]).is_file()]
        problems += [f"{path} is listed in dataset.json but missing" for path in missing]
        if missing or keys.LABEL not in case:
            continue
        try:
            image, label = nib.load(case[keys.IMAGE]), nib.load(case[keys.LABEL])
        except Exception as err:  # nibabel raises several types for unreadable headers
            problems.append(f"{case[keys.IMAGE]} or its label cannot be read as NIfTI: {err}")
            continue
        if image.shape[:3] != label.shape[:3]:
            problems.append(
                f"{case[keys.LABEL]}: shape {label.shape} does not match image shape {image.shape}"
            )
    return problems
