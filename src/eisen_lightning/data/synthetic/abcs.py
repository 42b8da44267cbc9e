"""A synthetic ABCs: CT, T1, T2 and two label maps per case as ``.mha``, in two archive part folders."""

import os
from pathlib import Path

import numpy as np

from eisen_lightning.data.datasets.abcs import LABEL_NAMES
from eisen_lightning.data.synthetic.json_list import blobs_case, itk_image, staged_folder, write_itk

SHAPE, SPACING = (32, 32, 24), (1.2, 1.2, 1.2)


def write_abcs_replica(root: str | os.PathLike, num_cases: int = 8, seed: int = 0) -> Path:
    """Write ``num_cases`` cases split over ``ABCs_training_data_Part1/`` and ``..._Part2/``."""
    rng = np.random.default_rng(seed)
    with staged_folder(root) as staging:
        if staging is None:
            return Path(root)
        for i in range(num_cases):
            part = staging / f"ABCs_training_data_Part{1 + i * 2 // num_cases}"
            part.mkdir(exist_ok=True)
            _write_case(part, f"{i:03d}", rng)
    return Path(root)


def _write_case(folder: Path, case_id: str, rng: np.random.Generator) -> None:
    base, task1 = blobs_case(rng, SHAPE, SPACING, len(LABEL_NAMES[1]))
    task2 = np.where(task1 > 0, (task1 * 2 - 1) % len(LABEL_NAMES[2]), 0).astype(np.uint8)
    contrasts = {"ct": base * 60.0 + 20.0, "t1": base * 300.0 + 100.0, "t2": (3.0 - base) * 200.0}
    for name, image in contrasts.items():
        write_itk(itk_image(image.astype(np.float32), SPACING), folder / f"{case_id}_{name}.mha")
    for task, label in ((1, task1), (2, task2)):
        write_itk(itk_image(label.astype(np.uint8), SPACING), folder / f"{case_id}_labelmap_task{task}.mha")
