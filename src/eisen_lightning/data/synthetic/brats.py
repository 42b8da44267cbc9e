"""A synthetic BraTS 2020 training folder: subject folders of ``.nii.gz`` volumes and the two CSV files."""

import csv
import os
from pathlib import Path

import numpy as np

from eisen_lightning.data.synthetic.json_list import blobs_case, nifti_image, staged_folder

SHAPE, SPACING = (40, 40, 32), (1.0, 1.0, 1.0)
NAME_MAPPING = ("Grade", "BraTS_2017_subject_ID", "BraTS_2018_subject_ID", "TCGA_TCIA_subject_ID",
                "BraTS_2019_subject_ID", "BraTS_2020_subject_ID")  # fmt: skip
SURVIVAL = ("Brats20ID", "Age", "Survival_days", "Extent_of_Resection")


def write_brats_replica(root: str | os.PathLike, num_subjects: int = 8, seed: int = 0) -> Path:
    """Write ``num_subjects`` subjects (labels 0, 1, 2, 4 nested as in gliomas) and the two CSV files."""
    rng = np.random.default_rng(seed)
    with staged_folder(root) as staging:
        if staging is None:
            return Path(root)
        mapping, survival = [], []
        for i in range(1, num_subjects + 1):
            sid = f"BraTS20_Training_{i:03d}"
            (staging / sid).mkdir()
            image, nested = blobs_case(rng, SHAPE, SPACING, 4)  # 1 oedema ⊃ 2 core ⊃ 3 enhancing
            label = np.choose(nested, [0, 2, 1, 4]).astype(np.uint8)
            contrasts = {
                "t1": image,
                "t1ce": image * (1 + (nested == 3)),
                "t2": 2.0 - image,
                "flair": image + (nested == 1),
            }
            for name, array in {**contrasts, "seg": label}.items():
                array = array if name == "seg" else (array * 300.0 + 400.0) * (nested >= 0)
                nifti_image(array.astype(np.uint8 if name == "seg" else np.float32), SPACING).to_filename(
                    staging / sid / f"{sid}_{name}.nii.gz"
                )
            grade = "HGG" if i % 4 else "LGG"
            mapping.append([grade, "", "", f"TCGA-XX-{1000 + i}", f"BraTS19_X_{i}_1", sid])
            if grade == "HGG" and i % 3:  # as distributed: survival only for some HGG subjects
                survival.append([sid, f"{rng.uniform(30, 80):.3f}", str(rng.integers(50, 1500)), "GTR"])
        _write_csv(staging / "name_mapping.csv", NAME_MAPPING, mapping)
        _write_csv(staging / "survival_info.csv", SURVIVAL, survival)
    return Path(root)


def _write_csv(path: Path, header: tuple[str, ...], rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
