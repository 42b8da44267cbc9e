"""A synthetic CAMUS: patient folders of 2D MetaImage frames (.mhd + .raw), labels, cines and Info files."""

import os
from pathlib import Path

import numpy as np

from eisen_lightning.data.synthetic.json_list import blobs_case, itk_image, staged_folder, write_itk

SHAPE = (48, 40)
SPACING = (0.31, 0.62)


def write_camus_replica(
    root: str | os.PathLike, test_root: str | os.PathLike | None = None, num_patients: int = 8, seed: int = 0
) -> Path:
    """Write ``num_patients`` patient folders into ``root`` (and 2 unlabelled ones into ``test_root``)."""
    _write_folder(Path(root), range(1, num_patients + 1), True, seed)
    if test_root is not None:
        _write_folder(Path(test_root), range(num_patients + 1, num_patients + 3), False, seed + 1)
    return Path(root)


def _write_folder(root: Path, numbers: range, with_gt: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with staged_folder(root) as staging:
        if staging is None:
            return
        for number in numbers:
            name = f"patient{number:04d}"
            (staging / name).mkdir()
            for view in ("2CH", "4CH"):
                _write_view(staging / name, name, view, rng, with_gt)


def _write_view(folder: Path, name: str, view: str, rng: np.random.Generator, with_gt: bool) -> None:
    frames = []
    for frame in ("ED", "ES"):
        image, label = blobs_case(rng, SHAPE, SPACING, 4)
        image = np.clip(image * 80 + 20, 0, 255).astype(np.uint8)  # 8-bit B-mode intensities
        write_itk(itk_image(image, SPACING, angle_deg=0.0), folder / f"{name}_{view}_{frame}.mhd")
        if with_gt:
            write_itk(itk_image(label, SPACING, angle_deg=0.0), folder / f"{name}_{view}_{frame}_gt.mhd")
        frames.append(image)
    sequence = np.stack([frames[0], frames[1], frames[0]], axis=-1)  # x, y, time
    write_itk(itk_image(sequence, (*SPACING, 1.0), angle_deg=0.0), folder / f"{name}_{view}_sequence.mhd")
    quality = rng.choice(["Good", "Medium", "Poor"])
    info = f"ED: 1\nES: 2\nNbFrame: 3\nSex: {rng.choice(['M', 'F'])}\nAge: {rng.integers(20, 90)}\n"
    (folder / f"Info_{view}.cfg").write_text(info + f"ImageQuality: {quality}\n")
