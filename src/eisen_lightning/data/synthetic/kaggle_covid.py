"""A synthetic Kaggle COVID-19 CT scans: ``metadata.csv`` with notebook paths and four ``.nii`` folders."""

import os
from pathlib import Path

import numpy as np

from eisen_lightning.data.synthetic.json_list import blobs_case, nifti_image, staged_folder

HEADER = "ct_scan,lung_mask,infection_mask,lung_and_infection_mask\n"
PREFIX = "../input/covid19-ct-scans"
SHAPE, SPACING = (40, 40, 16), (1.6, 1.6, 5.0)


def write_kaggle_covid_replica(root: str | os.PathLike, num_scans: int = 8, seed: int = 0) -> Path:
    """Write ``num_scans`` scans (half ``coronacases``, half ``radiopaedia``, as in the real set)."""
    rng = np.random.default_rng(seed)
    with staged_folder(root) as staging:
        if staging is None:
            return Path(root)
        folders = ("ct_scans", "lung_mask", "infection_mask", "lung_and_infection_mask")
        for folder in folders:
            (staging / folder).mkdir()
        rows = []
        for i in range(num_scans):
            image, combined = blobs_case(rng, SHAPE, SPACING, 4)  # 1, 2: lungs; 3: infection
            lungs = np.where(combined == 3, 2, combined).astype(np.uint8)
            names = _names(i)
            arrays = (image * 400.0 - 800.0, lungs, (combined == 3).astype(np.uint8), combined)
            for folder, name, array in zip(folders, names, arrays, strict=True):
                nifti_image(array, SPACING).to_filename(staging / folder / name)
            rows.append(",".join(f"{PREFIX}/{f}/{n}" for f, n in zip(folders, names, strict=True)))
        (staging / "metadata.csv").write_text(HEADER + "\n".join(rows) + "\n")
    return Path(root)


def _names(i: int) -> tuple[str, str, str, str]:
    if i % 2 == 0:
        n = i // 2 + 1
        return (f"coronacases_org_{n:03d}.nii", *(f"coronacases_{n:03d}.nii",) * 3)
    case = f"{i}_{85900 + i}_0"
    return (f"radiopaedia_org_covid-19-pneumonia-{case}-dcm.nii", *(f"radiopaedia_{case}.nii",) * 3)
