"""PatchCamelyon: ``camelyonpatch_level_2_split_{train,valid,test}_{x,y}.h5`` (+ optional ``_mask``).

``x`` holds ``N x 96 x 96 x 3`` uint8 patches under the HDF5 key ``x``, ``y`` holds ``N x 1 x 1 x 1``
labels under ``y`` (1: the centre 32x32 region holds tumour tissue), ``mask`` the tumour masks under
``mask``. Only the labels are read here (a few hundred kB); patches are read one at a time later.
Eisen's spelling ``camelyon_patch_level_2_...`` is accepted too.
"""

from pathlib import Path
from typing import Any

from eisen_lightning import keys
from eisen_lightning.data.classification import ImageLayout, problems_error

PCAM_SPLITS = ("train", "valid", "test")
PREFIXES = ("camelyonpatch_level_2_split", "camelyon_patch_level_2_split")
PCAM_HINT = (
    "Get PatchCamelyon from https://github.com/basveeling/pcam (the .h5.gz files, gunzipped) and put "
    "camelyonpatch_level_2_split_{{train,valid,test}}_{{x,y}}.h5 into {root}/, or set data.download=true."
)
#: Split name in the files -> split name of the run.
RUN_SPLIT = {"train": "train", "valid": "val", "test": "test"}


def pcam_file(root: Path, split: str, kind: str) -> Path:
    """The file of ``split`` (train, valid, test) and ``kind`` (x, y, mask), in either spelling.

    The official spelling is returned when neither exists.
    """
    for prefix in PREFIXES:
        path = root / f"{prefix}_{split}_{kind}.h5"
        if path.is_file():
            return path
    return root / f"{PREFIXES[0]}_{split}_{kind}.h5"


def has_pcam(root: Path) -> bool:
    """Whether any PatchCamelyon file is in ``root``."""
    return root.is_dir() and any(root.glob("camelyon*_level_2_split_*.h5"))


def read_pcam(root: str | Path) -> ImageLayout:
    """Parse a PatchCamelyon folder: one case per patch, ``image`` as ``file.h5#x[i]``.

    Every case has ``case_id`` (``<split>_<index>``), ``image``, ``label`` (0 or 1), ``split``
    (train, val, test: the official split it comes from) and, when the mask file exists, ``mask``.

    Raises:
        LayoutError: Listing every missing, unreadable or mismatched file.
    """
    root = Path(root)
    problems: list[str] = []
    cases: list[dict[str, Any]] = []
    for split in PCAM_SPLITS:
        cases += _split_cases(root, split, problems)
    problems_error(root, problems, PCAM_HINT.format(root=root))
    return ImageLayout(root, cases)


def _split_cases(root: Path, split: str, problems: list[str]) -> list[dict[str, Any]]:
    import h5py
    import numpy as np

    x_file, y_file, mask_file = (pcam_file(root, split, kind) for kind in ("x", "y", "mask"))
    missing = [str(p) for p in (x_file, y_file) if not p.is_file()]
    if missing:
        problems += [f"{p} is missing" for p in missing]
        return []
    try:
        with h5py.File(x_file, "r") as fx, h5py.File(y_file, "r") as fy:
            x_shape = _shape(fx, "x", x_file, problems)
            labels = np.asarray(fy["y"][()]).reshape(-1) if _shape(fy, "y", y_file, problems) else None
    except OSError as err:
        problems.append(f"{x_file} or {y_file} is not a readable HDF5 file ({err}); download it again")
        return []
    if x_shape is None or labels is None:
        return []
    if len(x_shape) != 4 or x_shape[-1] != 3:
        problems.append(f"{x_file}: dataset 'x' has shape {x_shape}, expected N x 96 x 96 x 3")
    if x_shape[0] != len(labels):
        problems.append(f"{x_file} has {x_shape[0]} patches but {y_file} has {len(labels)} labels")
        return []
    bad = sorted(set(labels.tolist()) - {0, 1})
    if bad:
        problems.append(f"{y_file}: labels must be 0 or 1, found {bad[:5]}")
    return _cases(split, x_file, labels, mask_file if mask_file.is_file() else None)


def _shape(handle: Any, name: str, path: Path, problems: list[str]) -> tuple[int, ...] | None:
    if name not in handle:
        problems.append(f"{path} has no dataset {name!r} (it holds {sorted(handle)})")
        return None
    return tuple(handle[name].shape)


def _cases(split: str, x_file: Path, labels: Any, mask_file: Path | None) -> list[dict[str, Any]]:
    x_path, run_split = str(x_file.absolute()), RUN_SPLIT[split]
    cases = []
    for i, label in enumerate(labels.tolist()):
        case = {
            keys.CASE_ID: f"{split}_{i}",
            keys.IMAGE: f"{x_path}#x[{i}]",
            keys.LABEL: int(label),
            "split": run_split,
        }
        if mask_file is not None:
            case["mask"] = f"{mask_file.absolute()}#mask[{i}]"
        cases.append(case)
    return cases
