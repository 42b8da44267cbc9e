"""A tiny UCSD COVID-CT replica: ``CT_COVID/`` and ``CT_NonCOVID/`` with PNG and JPEG slices.

Pictures are grey, RGB or RGBA, of several sizes, named as in the real set
(``<paper>-p<page>-<fig>%<n>.png``, ``<n>%<k>.jpg``).

COVID slices hold bright ground-glass patches in the lungs; the others have clear lungs.
"""

from pathlib import Path

import numpy as np


def chest_slice(rng: np.random.Generator, covid: bool, shape: tuple[int, int]) -> np.ndarray:
    """A grey uint8 axial chest slice: body, two dark lungs, ground-glass patches when ``covid``."""
    rows, cols = np.mgrid[: shape[0], : shape[1]] / np.array(shape)[:, None, None]
    image = np.full(shape, 10.0)
    image[np.hypot(rows - 0.5, (cols - 0.5) * 0.8) < 0.45] = 150.0
    for centre in (0.3, 0.7):
        lung = np.hypot((rows - 0.5) * 0.7, cols - centre) < 0.17
        image[lung] = 30.0
        if covid:
            for r, c in rng.uniform(-0.1, 0.1, (3, 2)):
                image[lung & (np.hypot(rows - 0.5 - r, cols - centre - c) < 0.06)] = 110.0
    return np.clip(image + rng.normal(0, 5, shape), 0, 255).astype(np.uint8)


def write_ucsd_covid_replica(root: str | Path, per_class: int = 12, seed: int = 0) -> Path:
    """Write ``per_class`` slices into each of ``CT_COVID/`` and ``CT_NonCOVID/`` under ``root``.

    Returns:
        ``root``.
    """
    from PIL import Image

    root = Path(root)
    if (root / "CT_COVID").is_dir():
        return root
    rng = np.random.default_rng(seed)
    for folder, covid in (("CT_COVID", True), ("CT_NonCOVID", False)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            grey = chest_slice(rng, covid, (int(rng.integers(60, 90)), int(rng.integers(70, 100))))
            name = (
                f"2020.03.{10 + i // 2}.2003{i // 2:04d}-p{i // 2 + 1}-{20 + i // 2}%{i % 2}"
                if covid
                else f"{i // 2}%{i % 2}"
            )
            if i % 3 == 0:
                Image.fromarray(grey).save(root / folder / f"{name}.jpg", quality=90)
            elif i % 3 == 1:
                Image.fromarray(np.stack([grey] * 3, -1)).save(root / folder / f"{name}.png")
            else:
                rgba = np.concatenate(
                    [np.stack([grey] * 3, -1), np.full((*grey.shape, 1), 255, np.uint8)], -1
                )
                Image.fromarray(rgba).save(root / folder / f"{name}.png")
    return root
