"""MedSeg COVID-19 CT: one NIfTI stack of axial slices (``tr_im.nii.gz``) and its mask (``tr_mask.nii.gz``).

Each slice along the last axis is one 2D sample (labels 0 background, 1 ground-glass opacity,
2 consolidation, 3 pleural effusion). A case is ``{"image": stack, "label": mask stack,
"slice_index": k}``; :class:`~eisen_lightning.data.medseg.LoadStackSliced` reads each stack once.
"""

from pathlib import Path
from typing import Any

from eisen_lightning import keys
from eisen_lightning.data.datasets.decathlon import NIFTI_SUFFIXES, LayoutError
from eisen_lightning.data.datasets.json_list import suffix_problems

LABEL_NAMES = ("background", "ground_glass", "consolidation", "pleural_effusion")
SLICE_INDEX = keys.SLICE_INDEX


def read_medseg(
    root: str | Path,
    image_file: str = "tr_im.nii.gz",
    mask_file: str | None = "tr_mask.nii.gz",
    test_file: str | None = None,
    hint: str = "",
) -> list[dict[str, Any]]:
    """Parse and check the MedSeg stacks into one case per slice.

    Args:
        root: The folder holding the files.
        image_file: The image stack; with ``mask_file`` its slices are labelled cases.
        mask_file: Its mask stack (same shape), or ``None``/``""`` for unlabelled slices.
        test_file: An unlabelled stack (``val_im.nii.gz``), or ``None``.
        hint: Appended to the error (where to get the data).

    Raises:
        LayoutError: Listing every problem: missing files, wrong suffixes, shapes that differ.
    """
    root = Path(root)
    named = {"data.image_file": image_file, "data.mask_file": mask_file or None, "data.test_file": test_file}
    paths = {k: root.absolute() / v for k, v in named.items() if v}
    problems = [f"{p}: missing ({k})" for k, p in paths.items() if not p.is_file()]
    problems += suffix_problems(paths.values(), NIFTI_SUFFIXES, "MedSeg stacks are NIfTI (.nii.gz) files")
    if problems:
        raise LayoutError(root, problems, hint)
    shapes = {k: _shape(p, problems) for k, p in paths.items()}
    mask = paths.get("data.mask_file")
    if mask is not None and shapes["data.image_file"] != shapes["data.mask_file"]:
        problems.append(
            f"{mask}: shape {shapes['data.mask_file']} differs from the image's {shapes['data.image_file']}"
        )
    if problems:
        raise LayoutError(root, problems, "Download the MedSeg files again.")
    cases = _slices(paths["data.image_file"], mask, shapes["data.image_file"])
    if test_file:
        cases += _slices(paths["data.test_file"], None, shapes["data.test_file"])
    return cases


def _shape(path: Path, problems: list[str]) -> tuple[int, ...]:
    import nibabel as nib

    try:
        shape = tuple(nib.load(path).shape)
    except Exception as err:  # nibabel raises several types for broken headers
        problems.append(f"{path}: cannot be read as NIfTI: {err}")
        return ()
    if len(shape) != 3:
        problems.append(f"{path}: expected a 3D stack of 2D slices, got shape {shape}")
    return shape


def _slices(image: Path, mask: Path | None, shape: tuple[int, ...]) -> list[dict[str, Any]]:
    stem = image.name.split(".")[0]
    cases = []
    for k in range(shape[-1]):
        case = {keys.CASE_ID: f"{stem}_{k:03d}", keys.IMAGE: str(image), SLICE_INDEX: k}
        if mask is not None:
            case[keys.LABEL] = str(mask)
        cases.append(case)
    return cases
